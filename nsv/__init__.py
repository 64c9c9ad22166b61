"""``nsv``: the command line. One module per command group; engine logic stays in ``engine``."""
