"""The pipeline definition: the one factory (`create_pipeline`), its eval config, resolvers, data sources and
provenance. Every runner builds its pipeline here."""
