"""The ``elasticsearch`` sink: ECS documents into Elasticsearch/OpenSearch data streams, and the Elastic
content pack (``wgsiem export elastic``)."""

from .config import ElasticsearchInstallConfig, ElasticsearchSinkConfig

__all__ = ["ElasticsearchInstallConfig", "ElasticsearchSinkConfig"]
