"""models/diffusion"""
