"""(placeholder; being written)"""
