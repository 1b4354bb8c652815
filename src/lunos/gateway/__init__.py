"""The Lunos gateway server. Nothing here is imported by the SDK side of the package."""
