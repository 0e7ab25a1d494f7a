"""models/contrastive"""
