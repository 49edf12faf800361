"""Session-wide fixtures come from the harness package (auxip_testing), one plugin module per real service."""

pytest_plugins = [
    "auxip_testing.plugin",
    "auxip_testing.postgres",
    "auxip_testing.clamd",
    "auxip_testing.sftp",
    "auxip_testing.ftp",
    "auxip_testing.http",
    "auxip_testing.s3",
    "auxip_testing.kafka",
    "auxip_testing.keycloak",
    "auxip_testing.hosts",
    "auxip_testing.kube_control_plane",
    "auxip_testing.notification_recorder",
]
