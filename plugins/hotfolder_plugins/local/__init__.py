"""The built-in local (Pillow) operations, one module per family; see ``local_ops``."""
