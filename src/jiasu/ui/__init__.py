"""Terminal output shared by the library and the CLI: console and progress bars."""
