"""Qt-free annotation model: documents, objects, labels, and their JSON storage."""
