"""blobstore."""
