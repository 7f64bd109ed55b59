def label_for(name: str) -> str:
    return name + 1  # a bug: str + int
