"""``python -m hotfolder`` runs the command line."""

from hotfolder.cli import main

main()
