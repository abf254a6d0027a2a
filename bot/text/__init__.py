"""Text rules shared by every stage: the one folding, the one author rule, TeX, paper ids."""
