"""Protocol clients for the devices of a print farm. Nothing here imports Home Assistant."""
