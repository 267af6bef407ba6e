"""The catalog's connectors: `from connectors.crm import crm_source`."""
