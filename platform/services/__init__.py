"""Cluster services: CNI, certificates, ingress/API gateway, Kafka, PostgreSQL, storage classes, registry mirror.

One component per service (`auxip:platform:<Name>`), all children of `ClusterServices` (`layer.py`), itself a child
of the platform layer's `Baseline`. Operators are pinned Helm releases (`versions.py`); the custom resources this
stack owns are rendered and schema-checked against the upstream CRDs (`auxip_testing.crd_schemas`).
"""
