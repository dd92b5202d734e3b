"""Farm rules: which printers there are, and one function per operation on them.

Everything here is called by the faces (actions, buttons, REST views); nothing here knows which
face called it.
"""
