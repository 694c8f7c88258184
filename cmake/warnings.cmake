add_library(project_warnings INTERFACE)
target_compile_options(project_warnings INTERFACE
	-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wformat=2 -Wvla -Wpointer-arith)
if(WERROR)
	target_compile_options(project_warnings INTERFACE -Werror)
endif()
