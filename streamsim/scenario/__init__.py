"""What a run is asked to do: the scenario models (pydantic), the plugin registry, and the nested
settings tables plugins declare."""
