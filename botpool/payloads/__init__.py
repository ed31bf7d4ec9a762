"""Code that runs on hosts or inside containers, standard library only.

Each module here is shipped as text (read with importlib.resources and passed to a
remote `python3`), so it may import nothing from botpool or from third parties.
"""
