// Composition root of the `fastgpu` binary.
#include "cli/main.h"

int main(int argc, char** argv) { return fastgpu::cli::Main(argc, argv); }
