"""Data formats, transforms, video and synthetic scenes. Top level stays torch-free."""
