"""A ServiceNow stand-in: a real HTTP server following the documented REST contract, with fault injection."""
