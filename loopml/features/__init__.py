"""The feature store: definitions, offline point-in-time joins and online stores.

The public names are re-exported lazily from ``loopml``; import the modules here
(``loopml.features.definitions``, ``loopml.features.offline``, ...) directly.
"""
