"""Binary pattern targets and outcome permutations for null tests."""
