"""Local stand-ins for the remote providers, speaking each one's real wire format strictly."""
