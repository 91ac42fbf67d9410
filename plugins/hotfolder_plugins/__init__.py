"""The built-in plugins: registered by hotfolder.plugins.DEFAULT_PLUGINS like any other."""
