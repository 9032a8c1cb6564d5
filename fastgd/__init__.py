"""fastgd"""
