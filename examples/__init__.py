"""Example plugins: a custom defense and a custom attack, each with a scenario that uses it."""
