"""The built-in commands, one plugin module per group of them: each adds its commands with
``hotfolder_register_commands``, as a third-party plugin would (see ``COMMAND_PLUGINS``).

================  ==========================================================================
``setup``         ``init``, ``validate``, ``plugins``: write, check and explain the config
``process``       ``process``: a chain once over files, folders, URLs and manifests
``service``       ``run``, ``status``, ``retry``: the daemon and its journal
``account``       ``models``, ``balance``: what Venice offers and what is left to spend
``sandbox``       ``sandbox``: serve the local stand-in for Venice's image API
``worker``        ``worker``: run a fleet's chains (``[executor] kind = "dramatiq"``)
================  ==========================================================================
"""
