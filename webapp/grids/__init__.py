"""X/Y/Z comparison grids: started from the studio or A1111's script, pictured when their cells end
(``webapp.prompting.grids`` reads the axes)."""
