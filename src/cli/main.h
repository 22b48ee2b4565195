// Entry point of the `fastgpu` binary.
#pragma once

namespace fastgpu::cli {

int Main(int argc, char** argv);

}  // namespace fastgpu::cli
