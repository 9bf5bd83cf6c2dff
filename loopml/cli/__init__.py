"""The ``loopml`` command (Typer + Rich): a thin shell over the Python API; see main.py."""
