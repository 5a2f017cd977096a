"""calobench.leaderboard"""
