"""calobench.simulator"""
