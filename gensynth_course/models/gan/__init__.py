"""models/gan"""
