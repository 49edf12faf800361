"""Deployment components of the AUXIP workloads (one image, one Deployment per `auxip <service>`)."""
