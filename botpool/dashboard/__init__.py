"""`botpool dashboard`: one web page for every host, pool and bot of an inventory."""
