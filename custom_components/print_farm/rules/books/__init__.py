"""The production books without Home Assistant: spools, products, recipes, runs, costing, money."""
