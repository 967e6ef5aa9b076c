"""Conda envs of matrix cells: what decides them (spec), where they live (cache), who builds."""
