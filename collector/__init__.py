"""The precaution collector: enrolment, lossless ingest, rectification tracking, notices and tasks, metrics.

Layout like the FastAPI full-stack template: ``api`` (app, routes, dependencies), ``core`` (settings, paths,
CA, security, database, migrations, working days), ``models`` (tables), ``crud`` (the work), ``service``
(init, serve, maintenance, backup), ``cli``. See docs/collector.md.
"""

__version__ = "0.1.0"
