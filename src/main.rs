fn main() {
    std::process::exit(convscope::main_entry());
}
