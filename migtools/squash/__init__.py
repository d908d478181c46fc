"""The squash lifecycle: prove a squash faithful (:mod:`.compare`, :mod:`.schema`) and prune the
migrations it replaces once it is deployed (:mod:`.prune`)."""
