# Sanitizers apply to every target of the build, so they are set as
# directory-wide options here rather than per target.
if(ENABLE_ASAN AND ENABLE_TSAN)
	message(FATAL_ERROR "ENABLE_ASAN and ENABLE_TSAN are exclusive")
endif()
if(ENABLE_ASAN)
	add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
		-fno-sanitize-recover=undefined)
	add_link_options(-fsanitize=address,undefined)
endif()
if(ENABLE_TSAN)
	add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
	add_link_options(-fsanitize=thread)
endif()
if(ENABLE_FUZZ)
	if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
		message(FATAL_ERROR "ENABLE_FUZZ needs clang (CC=clang)")
	endif()
	# Instrument every library for coverage; only the fuzz targets link libFuzzer's main.
	add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
		-fno-sanitize-recover=undefined)
	add_link_options(-fsanitize=address,undefined)
endif()
