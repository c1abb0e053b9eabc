"""Mail store services: folders, delivery with group commit, the outbound queue."""
