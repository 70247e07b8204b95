print("samsa")
