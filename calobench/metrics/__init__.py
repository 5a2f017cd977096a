"""calobench.metrics"""
