"""models/vq"""
