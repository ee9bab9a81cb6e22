# Writes INPUT (PTX text) to OUTPUT as a C++ raw string literal.
file(READ "${INPUT}" content)
file(WRITE "${OUTPUT}" "R\"kilnptx(${content})kilnptx\"\n")
