"""Interoperability with other ML tools' data: ``import_mlflow`` migrates an MLflow store into loopml.

The importer is API-level (it writes through loopml's store contracts, like
the tracking and registry clients); the MLflow-compatible REST routes live in
``loopml.server.mlflow`` and share this package's conventions for where
MLflow's logged models and their records are kept in a loopml run.
"""
