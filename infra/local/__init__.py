"""The stack as local processes (`./run stack`)."""
