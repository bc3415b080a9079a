"""Model families, one file each. Modules are imported lazily, through the registry's entry points."""
